"""The commands around training, under the faults and mistakes of issue 27, for ``benchmarks/faults.py``: each case
runs the real ``contrastkit`` command in its own process and reports what was tried, what survived (sha256 of every
earlier output before and after) and what the user saw.

Cases: ``outputs`` (export onto its checkpoint, embed killed half-way with --overwrite, index build onto its own
input, predict onto a run's finetune.json, finetune --name ../x, an existing output without --overwrite),
``unreadable`` (embed and predict of only corrupt images), ``search_k`` (``search -k 1000000000`` on 360 vectors:
peak memory) and ``serve`` (an encoder of another dimension; a 20000 x 20000 PNG of ~60 KB; a 100 MB body).
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
TINY = ["trainer.max_steps=3", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu",
        "monitor.every_n_epochs=0", "final_eval.enabled=false"]  # fmt: skip


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "contrastkit", *args]


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=ENV, cwd=cwd, capture_output=True, text=True, timeout=900)


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*")
            if p.is_file()}  # fmt: skip


def said(done: subprocess.CompletedProcess) -> str:
    """rc and the last line the user saw."""
    line = (done.stderr.strip() or done.stdout.strip() or "?").splitlines()[-1]
    line = line.split("error: ", 1)[-1][:110]
    return f"rc {done.returncode}: `{line}`"


def setup(tmp: Path) -> dict[str, Path]:
    """A tiny trained run (checkpoint + encoder), its embedding of digits' test split, an index of it and a
    frozen-probe classifier, made once for the cases."""
    out = tmp / "cmd"
    if not (out / "run" / "encoder.safetensors").is_file():
        run(cli("train", "simclr-digits", f"out_dir={out}", "name=run", *TINY), tmp)
        run(cli("embed", str(out / "run" / "encoder.safetensors"), "digits", "--split", "test", "--out",
                str(out / "emb"), "--quiet", "--num-workers", "0"), tmp)  # fmt: skip
        run(cli("finetune", str(out / "run" / "encoder.safetensors"), "--data", "digits", "--labels-per-class", "2",
                "--freeze", "--no-scratch", "--out-dir", str(out), "--name", "ft"), tmp)  # fmt: skip
        run(cli("index", "build", str(out / "emb"), "--out", str(out / "digits.faiss")), tmp)
    return {"out": out, "run": out / "run", "ckpt": out / "run" / "checkpoints" / "last.ckpt",
            "encoder": out / "run" / "encoder.safetensors", "emb": out / "emb", "ft": out / "ft",
            "index": out / "digits.faiss"}  # fmt: skip


def outputs(tmp: Path) -> list[tuple[str, str, str]]:
    f = setup(tmp)
    rows = []
    before = digest(f["out"])
    done = run(cli("export", str(f["ckpt"]), "--out", str(f["ckpt"]), "--overwrite"), tmp)
    rows.append(("`export CKPT --out CKPT --overwrite`", f"checkpoint unchanged: {digest(f['out']) == before}",
                 said(done)))  # fmt: skip
    done = run(cli("embed", str(f["encoder"]), "digits", "--split", "test", "--out", str(f["emb"])), tmp)
    rows.append(("`embed` into a folder of earlier embeddings, no --overwrite",
                 f"embeddings unchanged: {digest(f['out']) == before}", said(done)))  # fmt: skip
    earlier = digest(f["emb"])
    process = subprocess.Popen(cli("embed", str(f["encoder"]), "digits", "--out", str(f["emb"]), "--quiet",
                                   "--num-workers", "0", "--batch-size", "1", "--overwrite"), env=ENV, cwd=tmp,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 300
    while not any(f["out"].glob(".emb.partial-*/ids.txt")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    whole = digest(f["emb"]) == earlier
    rerun = run(cli("embed", str(f["encoder"]), "digits", "--split", "test", "--out", str(f["emb"]), "--quiet",
                    "--num-workers", "0", "--overwrite"), tmp)  # fmt: skip
    left = sorted(p.name for p in f["out"].glob(".emb.*"))
    rows.append(("`embed --overwrite` SIGKILLed half-way through the new embedding",
                 f"the earlier embeddings whole: {whole}; rerun rc {rerun.returncode}, leftovers after it: {left or 0}",
                 "nothing (killed); the earlier output stays"))  # fmt: skip
    before = digest(f["emb"])
    done = run(cli("index", "build", str(f["emb"]), "--out", str(f["emb"] / "embeddings.npy"), "--overwrite"), tmp)
    rows.append(("`index build EMB --out EMB/embeddings.npy --overwrite`",
                 f"embeddings unchanged: {digest(f['emb']) == before}", said(done)))  # fmt: skip
    before = digest(f["ft"])
    done = run(cli("predict", str(f["ft"]), str(tmp), "--out", str(f["ft"] / "finetune.json"), "--overwrite"), tmp)
    rows.append(("`predict RUN ... --out RUN/finetune.json --overwrite`",
                 f"run unchanged: {digest(f['ft']) == before}", said(done)))  # fmt: skip
    done = run(cli("finetune", str(f["encoder"]), "--data", "digits", "--labels-per-class", "2", "--out-dir",
                   str(f["out"]), "--name", "../escape_ft"), tmp)  # fmt: skip
    rows.append(("`finetune --name ../escape_ft`", f"nothing outside --out-dir: {not (tmp / 'escape_ft').exists()}",
                 said(done)))  # fmt: skip
    return rows


def unreadable(tmp: Path) -> list[tuple[str, str, str]]:
    f = setup(tmp)
    corrupt = tmp / "all-corrupt"
    corrupt.mkdir(exist_ok=True)
    for i in range(12):
        (corrupt / f"{i:02d}.png").write_bytes(b"not a png")
    rows = []
    done = run(cli("embed", str(f["encoder"]), str(corrupt), "--out", str(tmp / "emb-corrupt"), "--quiet"), tmp)
    rows.append(("`embed` a folder of 12 corrupt images", f"nothing written: {not (tmp / 'emb-corrupt').exists()}",
                 said(done)))  # fmt: skip
    done = run(cli("predict", str(f["ft"]), str(corrupt), "--out", str(tmp / "p.csv")), tmp)
    rows.append(("`predict` a folder of 12 corrupt images", f"nothing written: {not (tmp / 'p.csv').exists()}",
                 said(done)))  # fmt: skip
    return rows


def search_k(tmp: Path) -> list[tuple[str, str, str]]:
    f = setup(tmp)
    index = f["index"]
    query = tmp / "query.png"
    from PIL import Image

    Image.new("L", (8, 8), 128).save(query)
    measure = ("import resource, subprocess, sys, time; start = time.perf_counter(); "
               "done = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "print(done.returncode, len(done.stdout.strip().splitlines()), time.perf_counter() - start, "
               "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)")  # fmt: skip
    done = run([sys.executable, "-c", measure, *cli("search", str(index), "--image", str(query), "-k", "1000000000")],
               tmp)  # fmt: skip
    rc, printed, seconds, peak = done.stdout.split()
    rows = len((index.parent / (index.name + ".ids.txt")).read_text().splitlines())
    return [(f"`search INDEX --image X -k 1000000000` on {rows} vectors",
             f"rc {rc}, {printed} results printed in {float(seconds):.1f} s; peak memory of the command {peak} MiB "
             "(was killed by the kernel at 23 GB)", "every row, once")]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(tmp: Path) -> list[tuple[str, str, str]]:
    import httpx
    from PIL import Image

    f = setup(tmp)
    index = f["index"]
    other = tmp / "other.safetensors"
    from contrastkit.backbones import create_backbone, save_encoder

    save_encoder(create_backbone("small_cnn", in_chans=1, small_input=True, widths=(4, 8, 16)), other,
                 {"backbone": "small_cnn", "in_chans": 1, "input_size": 8, "small_input": True, "mean": [0.5],
                  "std": [0.5], "backbone_kwargs": {"widths": [4, 8, 16]}})  # fmt: skip
    rows = []
    done = run(cli("serve", str(index), "--encoder", str(other), "--port", str(_free_port())), tmp)
    rows.append(("`serve INDEX --encoder ENC` of another dimension", "refused at start", said(done)))
    port = _free_port()
    server = subprocess.Popen(cli("serve", str(index), "--port", str(port)), env=ENV, cwd=tmp,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        bomb = io.BytesIO()
        Image.new("L", (20000, 20000)).save(bomb, format="PNG")
        start = time.perf_counter()
        answer = httpx.post(f"{url}/search", files={"image": ("bomb.png", bomb.getvalue(), "image/png")}, timeout=60)
        seconds, health = time.perf_counter() - start, httpx.get(f"{url}/health").status_code
        rows.append((f"a 20000 x 20000 PNG of {len(bomb.getvalue()) // 1024} KB uploaded",
                     f"answered in {seconds:.2f} s; /health {health}",
                     f"{answer.status_code}: `{answer.json().get('error', '')[:90]}`"))  # fmt: skip

        def body():
            yield b'--contrastkit\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n\r\n'
            for _ in range(100):
                yield b"\0" * (1 << 20)

        start = time.perf_counter()
        try:
            kind = "multipart/form-data; boundary=contrastkit"
            answer = httpx.post(f"{url}/search", content=body(), headers={"content-type": kind}, timeout=60)
            status = f"{answer.status_code}: `{answer.json().get('error', '')[:80]}`"
        except httpx.HTTPError as e:
            status = f"connection closed by the server ({type(e).__name__})"
        rows.append(("a 100 MB chunked body (no Content-Length)",
                     f"cut after {time.perf_counter() - start:.2f} s, server alive: "
                     f"{httpx.get(f'{url}/health').status_code == 200}", status))  # fmt: skip
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    return rows


CASES = {"outputs": outputs, "unreadable": unreadable, "search_k": search_k, "serve": serve}
