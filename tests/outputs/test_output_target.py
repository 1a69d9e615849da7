"""OutputTarget: an earlier output is refused unless overwritten, an input is never an output, and a command that
fails or is killed half-way leaves the earlier output whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from contrastkit.outputs.output_target import OutputTarget


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_new_file_and_its_companions_appear_only_when_complete(tmp_path):
    target = OutputTarget(tmp_path / "enc.safetensors", companions=["enc.json"])
    with target.staged() as path:
        assert path.name == "enc.safetensors" and path.parent != tmp_path
        path.write_text("weights")
        path.with_suffix(".json").write_text("meta")
        assert _listing(tmp_path) == [".enc.safetensors.partial-" + str(os.getpid()),
                                      f".enc.safetensors.partial-{os.getpid()}/enc.json",
                                      f".enc.safetensors.partial-{os.getpid()}/enc.safetensors"]  # fmt: skip
    assert _listing(tmp_path) == ["enc.json", "enc.safetensors"]
    assert (tmp_path / "enc.safetensors").read_text() == "weights"


def test_an_existing_output_or_companion_is_refused_without_overwrite(tmp_path):
    (tmp_path / "enc.json").write_text("earlier")
    with pytest.raises(ValueError, match=r"enc.json exists already: pass --overwrite"):
        OutputTarget(tmp_path / "enc.safetensors", companions=["enc.json"])
    target = OutputTarget(tmp_path / "enc.safetensors", companions=["enc.json", "enc.ids"], overwrite=True)
    (tmp_path / "enc.ids").write_text("a companion the new output does not have")
    with target.staged() as path:
        path.write_text("new")
        (path.parent / "enc.json").write_text("new meta")
    assert _listing(tmp_path) == ["enc.json", "enc.safetensors"]  # the stale companion went with the old output


def test_a_failure_mid_write_keeps_the_earlier_output_and_leaves_no_staging(tmp_path):
    (tmp_path / "out.csv").write_text("earlier")
    target = OutputTarget(tmp_path / "out.csv", overwrite=True)
    with pytest.raises(RuntimeError, match="disk on fire"), target.staged() as path:
        path.write_text("half")
        raise RuntimeError("disk on fire")
    assert _listing(tmp_path) == ["out.csv"] and (tmp_path / "out.csv").read_text() == "earlier"


def test_a_writer_that_writes_nothing_or_undeclared_files_publishes_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="nothing was written"), OutputTarget(tmp_path / "a.csv").staged():
        pass
    with pytest.raises(RuntimeError, match="undeclared files"), OutputTarget(tmp_path / "b.csv").staged() as path:
        path.write_text("b")
        (path.parent / "b.extra").write_text("?")
    assert _listing(tmp_path) == []


def test_an_input_is_never_an_output(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("{}\n")
    with pytest.raises(ValueError, match="is also this command's input"):
        OutputTarget(data, inputs=[data], overwrite=True)
    with pytest.raises(ValueError, match="is also this command's input"):  # the same file by another name
        OutputTarget(tmp_path / "sub" / ".." / "data.jsonl", inputs=[data], overwrite=True)
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"x")
    with pytest.raises(ValueError, match="holds this command's input"):  # a folder output around an input
        OutputTarget(tmp_path, inputs=[folder / "a.png"], overwrite=True, folder=True)
    with pytest.raises(ValueError, match="is a file of the input folder"):  # an existing file inside an input folder
        OutputTarget(folder / "a.png", inputs=[folder], overwrite=True)
    OutputTarget(folder / "new.csv", inputs=[folder])  # a new file there is fine


def test_a_folder_of_other_files_is_never_replaced(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("years of work")
    with pytest.raises(ValueError, match=r"folder of other files .* not replaced, --overwrite or not"):
        OutputTarget(home, overwrite=True, folder=True, markers=["embed.json"])
    assert (home / "thesis.tex").read_text() == "years of work"
    with pytest.raises(ValueError, match="is a file: give a folder name"):
        OutputTarget(home / "thesis.tex", folder=True)


def test_a_folder_output_replaces_the_earlier_one_whole(tmp_path):
    out = tmp_path / "emb"
    out.mkdir()
    (out / "embed.json").write_text("old")
    (out / "old-only.txt").write_text("old")
    with pytest.raises(ValueError, match="holds an earlier output: pass --overwrite"):
        OutputTarget(out, folder=True, markers=["embed.json"])
    with OutputTarget(out, overwrite=True, folder=True, markers=["embed.json"]).staged() as folder:
        (folder / "embed.json").write_text("new")
        assert (out / "embed.json").read_text() == "old"  # untouched until the new one is complete
    assert _listing(tmp_path) == ["emb", "emb/embed.json"] and (out / "embed.json").read_text() == "new"


KILLED = textwrap.dedent(
    """
    import os, signal, sys
    from contrastkit.outputs.output_target import OutputTarget
    target = OutputTarget(sys.argv[1], overwrite=True, folder=True, markers=["embed.json"])
    with target.staged() as folder:
        (folder / "embed.json").write_text("half of a new output")
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_a_killed_command_leaves_the_earlier_output_whole_and_the_next_one_cleans_up(tmp_path):
    out = tmp_path / "emb"
    out.mkdir()
    (out / "embed.json").write_text("earlier")
    done = subprocess.run([sys.executable, "-c", KILLED, str(out)], capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "emb"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".emb.partial-")  # the killed one's staging folder
    assert (out / "embed.json").read_text() == "earlier"
    OutputTarget(out, overwrite=True, folder=True, markers=["embed.json"])  # the next command removes it
    assert _listing(tmp_path) == ["emb", "emb/embed.json"]
