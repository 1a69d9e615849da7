"""Fuzzed ``key=value`` overrides: every one is either accepted (and the config round-trips through what
``--print-config`` prints) or refused with a ConfigError of one line that names the key; nothing else escapes."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contrastkit.train.config import ConfigError, config_to_dict, load_config


def _keys(tree: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        out += _keys(value, f"{path}.") if isinstance(value, dict) and value else [path]
    return out


BASE = "simclr-fashion-mnist"
KEYS = sorted(k for k in _keys(config_to_dict(load_config(BASE))) if not k.startswith(("method.name", "views.recipe")))
TYPO_KEYS = st.sampled_from(KEYS).map(lambda k: k[:-1] + ("x" if k[-1] != "x" else "y"))  # a mistyped last letter
VALUES = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["true", "false", "null", "[]", "[1, 2]", "[0.1, 0.2, 0.3]", "{}", "''", "abc", "-1", "0"]),
    st.text(alphabet=st.characters(codec="ascii", exclude_characters="\n\r\x00"), max_size=12),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.one_of(st.sampled_from(KEYS), TYPO_KEYS), value=VALUES)
def test_an_override_is_accepted_and_round_trips_or_refused_in_one_line_naming_the_key(key, value):
    override = f"{key}={value}"
    try:
        config = load_config(BASE, [override])
    except ConfigError as e:
        message = str(e)
        assert "\n" not in message, message
        section = key.split(".")[0]
        assert key in message or section in message or "override" in message or "config" in message, (override, message)
        return
    printed = yaml.safe_dump(config_to_dict(config), sort_keys=False)  # what --print-config shows
    again = load_config(yaml.safe_load(printed))
    assert config_to_dict(again) == config_to_dict(config)


RECIPES = ["simclr-fashion-mnist", "dino-fashion-mnist", "moco-v2-fashion-mnist", "clip-fashion-mnist", "text-pairs",
           "byol-fashion-mnist", "vicreg-fashion-mnist", "barlow-twins-fashion-mnist"]  # fmt: skip


def test_every_number_of_every_section_refuses_nan_and_infinity_naming_its_key():
    """Found by the fuzz above (optim.lars_eta=nan ran): NaN and infinity are refused in every float field and every
    list of floats, the trainer's sections and the method's and views' own parameters alike."""
    checked = 0
    for recipe in RECIPES:
        tree = config_to_dict(load_config(recipe))
        for key in _keys(tree):
            value = _value(tree, key)
            floats = isinstance(value, float) or (isinstance(value, list) and value and isinstance(value[0], float))
            if not floats:
                continue
            for bad in ("nan", "inf", "-inf"):
                text = (
                    bad
                    if isinstance(value, float)
                    else "[" + ", ".join([repr(value[0])] * (len(value) - 1) + [bad]) + "]"
                )
                try:
                    load_config(recipe, [f"{key}={text}"])
                except ConfigError as e:
                    assert key in str(e) and "\n" not in str(e), (key, str(e))
                else:
                    raise AssertionError(f"{recipe}: {key}={text} was accepted")
                checked += 1
    assert checked > 200  # the views' probabilities and scales, the methods' temperatures and momenta, the optimiser


def _value(tree: dict, key: str):
    for part in key.split("."):
        tree = tree[part]
    return tree
