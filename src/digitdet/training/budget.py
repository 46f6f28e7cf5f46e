"""How long training runs, in optimizer steps: the one quantity the learning-rate schedule and the stop
follow, so that a seed and a budget give the same weights on a fast host and a slow one."""

from __future__ import annotations

import math
import time

from digitdet.training import distributed

CALIBRATION_STEPS = 20  # steps timed to turn a budget in minutes into a budget in steps


class StepBudget:
    """The number of optimizer steps training takes.

    - `max_images`: ceil(images / images per step), whatever the host's speed.
    - `max_minutes` (a convenience, used only without max_images): the CALIBRATION_STEPS steps after the
      first are timed once and the minutes converted into a step count, which is then fixed and
      checkpointed; nothing after that depends on the clock.
    - neither: epochs x steps per epoch (`cap`), which also bounds the other two.
    `steps` is None only while a minutes budget is being calibrated.
    """

    def __init__(self, *, cap: int, images_per_step: int, max_images: int | None = None,
                 max_minutes: float | None = None, steps: int | None = None):
        self.cap = max(1, int(cap))
        self.images_per_step = max(1, int(images_per_step))
        self.minutes = max_minutes
        self.steps = steps
        if self.steps is None and max_images:
            self.steps = min(self.cap, math.ceil(max_images / self.images_per_step))
        if self.steps is None and not max_minutes:
            self.steps = self.cap
        self.seconds_per_step: float | None = None
        self._start: tuple[float, int] | None = None

    @property
    def total(self) -> int:
        """The steps the schedule spreads over (the cap while a minutes budget is still calibrating)."""
        return self.steps or self.cap

    def reached(self, step: int) -> bool:
        return self.steps is not None and step >= self.steps

    def after_step(self, step: int) -> bool:
        """Called after every optimizer step with the number of steps done; True: stop now."""
        if self.steps is None:
            self._calibrate(step)
        return self.reached(step)

    def _calibrate(self, step: int) -> None:
        now = time.monotonic()
        if self._start is None:  # the first step (allocator, kernel selection) is not timed
            self._start = (now, step)
            return
        t0, s0 = self._start
        if step - s0 < CALIBRATION_STEPS:
            return
        per_step = (now - t0) / (step - s0)
        steps = max(step, min(self.cap, math.floor(self.minutes * 60 / per_step)))
        # Under torchrun every rank must stop at the same step: rank 0's measurement decides.
        self.seconds_per_step, self.steps = distributed.broadcast((per_step, steps))

    def record(self) -> dict:
        """What metrics.jsonl and the summary keep about the budget."""
        out = {"budget_steps": self.steps, "budget_images": None if self.steps is None
               else self.steps * self.images_per_step}
        if self.seconds_per_step is not None:
            out["calibrated_seconds_per_step"] = round(self.seconds_per_step, 4)
        return out
