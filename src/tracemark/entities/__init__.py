"""Plain data objects shared by every layer; no I/O happens here."""

from tracemark.entities.experiment import Experiment, LifecycleStage
from tracemark.entities.paging import PagedList
from tracemark.entities.run import FileInfo, Metric, Param, Run, RunStatus, RunTag

__all__ = [
    "Experiment",
    "FileInfo",
    "LifecycleStage",
    "Metric",
    "PagedList",
    "Param",
    "Run",
    "RunStatus",
    "RunTag",
]
