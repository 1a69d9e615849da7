"""The kinds of run ``train()`` runs the same way: each a :class:`Task`, registered under the ``Method.task`` name of
the methods it trains (``images``, ``image-text``, ``text-pairs``, ``sequences``)."""

from contrastkit.train.tasks.image_task import ImageTask, build_method, build_views, encoder_info
from contrastkit.train.tasks.image_text_task import ImageTextTask
from contrastkit.train.tasks.sequence_task import SequenceTask
from contrastkit.train.tasks.task import FinalEvaluation, Task, get_task, list_tasks, register_task
from contrastkit.train.tasks.text_pairs_task import TextPairsTask

__all__ = [
    "FinalEvaluation",
    "ImageTask",
    "ImageTextTask",
    "SequenceTask",
    "Task",
    "TextPairsTask",
    "build_method",
    "build_views",
    "encoder_info",
    "get_task",
    "list_tasks",
    "register_task",
]
