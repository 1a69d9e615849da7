import pytest
import torch

from contrastkit.data.class_captions import ClassCaptions, class_prompt_name, class_wordings

TEMPLATES = ("a photo of a {}.", "a picture of one {}.", "the {}, small.")


def test_each_caption_is_a_template_filled_with_the_class_name():
    captions = ClassCaptions(["T-shirt/top", "ankle_boot"], TEMPLATES, seed=0)
    labels = torch.tensor([0, 1, 1, 0, 1])
    out = captions(labels)
    names = ["t-shirt or top", "ankle boot"]
    for caption, y in zip(out, labels.tolist(), strict=True):
        assert caption in [t.format(names[y]) for t in TEMPLATES]


def test_templates_are_drawn_uniformly():
    captions = ClassCaptions(["cat", "dog"], TEMPLATES, seed=1)
    out = captions(torch.zeros(6000, dtype=torch.long))
    counts = [out.count(t.format("cat")) for t in TEMPLATES]
    assert sum(counts) == 6000
    assert all(abs(c - 2000) < 5 * (6000 * (1 / 3) * (2 / 3)) ** 0.5 for c in counts), counts  # within 5 sigma


def test_the_same_seed_or_generator_draws_the_same_captions_and_another_differs():
    labels = torch.randint(0, 2, (64,), generator=torch.Generator().manual_seed(0))
    a = ClassCaptions(["cat", "dog"], TEMPLATES, seed=3)(labels)
    assert a == ClassCaptions(["cat", "dog"], TEMPLATES, seed=3)(labels)
    assert a != ClassCaptions(["cat", "dog"], TEMPLATES, seed=4)(labels)
    captions = ClassCaptions(["cat", "dog"], TEMPLATES, seed=3)
    first = captions(labels, torch.Generator().manual_seed(11))
    assert first == captions(labels, torch.Generator().manual_seed(11))  # the passed generator, not the own one
    assert first != captions(labels, torch.Generator().manual_seed(12))


def test_wording_replaces_the_names_it_lists():
    words = class_wordings(["Sneaker", "Bag"], {"Sneaker": " sneaker, a sports shoe "})
    assert words == ["sneaker, a sports shoe", "bag"]
    captions = ClassCaptions(["Sneaker", "Bag"], ("{}",), wording={"Bag": "bag, a handbag"})
    assert captions(torch.tensor([0, 1])) == ["sneaker", "bag, a handbag"]


@pytest.mark.parametrize(
    ("wording", "message"), [({"Boot": "a boot"}, r"\['Boot'\]: not classes"), ({"Bag": "  "}, "is empty")]
)
def test_bad_wording_is_refused_by_name(wording, message):
    with pytest.raises(ValueError, match=message):
        ClassCaptions(["Sneaker", "Bag"], TEMPLATES, wording=wording)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="classes is empty"):
        ClassCaptions([], TEMPLATES)
    with pytest.raises(ValueError, match="exactly one"):
        ClassCaptions(["cat"], ("no slot",))
    with pytest.raises(ValueError, match=r"class ids in \[0, 2\)"):
        ClassCaptions(["cat", "dog"], TEMPLATES)(torch.tensor([0, 2]))


def test_prompt_names_read_as_words():
    assert class_prompt_name("T-shirt/top") == "t-shirt or top"
    assert class_prompt_name(" Ankle_Boot ") == "ankle boot"


def test_fashion_mnist_words_every_class_and_only_its_classes():
    from contrastkit.data.fashion_mnist import CLASS_WORDING, CLASSES

    assert class_wordings(CLASSES, CLASS_WORDING) == [CLASS_WORDING[c] for c in CLASSES]  # no unknown key
    assert set(CLASS_WORDING) == set(CLASSES)
