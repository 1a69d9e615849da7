"""contrastkit: contrastive representation learning, from losses to a searchable encoder."""

__version__ = "0.1.0"
