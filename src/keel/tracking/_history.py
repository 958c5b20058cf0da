"""A metric's history as NumPy arrays, sorted by step then time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from keel.core._entities import MetricPoint
from keel.stores.metadata import MetricSeries

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class MetricHistory:
    """Every logged point of one metric of one run.

    ``steps``, ``timestamps`` (epoch seconds) and ``values`` are aligned arrays; NaN and
    infinities are kept exactly as logged.
    """

    run_id: str
    key: str
    steps: npt.NDArray[np.int64]
    timestamps: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]

    @classmethod
    def from_series(cls, run_id: str, key: str, series: MetricSeries) -> MetricHistory:
        steps = np.frombuffer(series.steps, dtype="<i8").astype(np.int64, copy=False)
        stamps = np.frombuffer(series.timestamps, dtype="<f8").astype(np.float64, copy=False)
        values = np.frombuffer(series.values, dtype="<f8").astype(np.float64, copy=False)
        order = np.lexsort((stamps, steps))
        if not np.array_equal(order, np.arange(order.size)):
            steps, stamps, values = steps[order], stamps[order], values[order]
        return cls(run_id, key, steps, stamps, values)

    def __len__(self) -> int:
        return int(self.steps.size)

    def __iter__(self) -> Iterator[MetricPoint]:
        for step, stamp, value in zip(
            self.steps.tolist(), self.timestamps.tolist(), self.values.tolist(), strict=True
        ):
            yield MetricPoint(self.key, value, step, stamp)

    def to_pandas(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(
            {
                "step": self.steps,
                "timestamp": pd.to_datetime(self.timestamps, unit="s", utc=True),
                "value": self.values,
            }
        )
