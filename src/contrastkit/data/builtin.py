"""The built-in data sets: importing this module registers them (``digits``, ``fashion-mnist``, ``cifar10``,
``stl10``, and the 1-D ``synthetic-signals``). :mod:`contrastkit.data.registry` imports it on the first look-up."""

from contrastkit.data import cifar, digits, fashion_mnist, sequence_dataset, stl10

BUILTIN_MODULES = (digits, fashion_mnist, cifar, stl10, sequence_dataset)

__all__ = ["BUILTIN_MODULES"]
