"""The public API is typed (the package ships ``py.typed``): every parameter and return value of the functions and
public methods that the packages list in ``__all__`` is annotated, so type checkers see what users call."""

import importlib
import inspect
from pathlib import Path

import contrastkit

PACKAGES = ["contrastkit", "contrastkit.losses", "contrastkit.heads", "contrastkit.views", "contrastkit.methods",
            "contrastkit.optim", "contrastkit.eval", "contrastkit.data", "contrastkit.backbones", "contrastkit.index",
            "contrastkit.finetuning", "contrastkit.report"]  # fmt: skip


def public_functions():
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                yield f"{package}.{name}", obj
            elif inspect.isclass(obj) and not getattr(obj, "_is_protocol", False):
                for attr, fn in vars(obj).items():
                    if inspect.isfunction(fn) and (attr in ("__init__", "forward") or not attr.startswith("_")):
                        yield f"{package}.{name}.{attr}", fn


def test_public_functions_and_methods_are_annotated():
    unannotated = []
    found = 0
    for qualname, fn in public_functions():
        found += 1
        sig = inspect.signature(fn)
        skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        params = [p for n, p in sig.parameters.items() if n not in ("self", "cls") and p.kind not in skip]
        missing = [p.name for p in params if p.annotation is inspect.Parameter.empty]
        if missing or sig.return_annotation is inspect.Signature.empty:
            unannotated.append(f"{qualname}: parameters {missing}, return {sig.return_annotation is not sig.empty}")
    assert found > 150  # the check sees the API (guards against an empty __all__ walk)
    assert not unannotated, "\n".join(unannotated)


def test_the_package_is_marked_typed():
    assert (Path(contrastkit.__file__).parent / "py.typed").is_file()
