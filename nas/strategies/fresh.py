"""Fresh candidates: which proposals have a canonical key not evaluated (or proposed) before.

Canonical keys are strings computed on the host (`SearchSpace.key`), so a strategy that avoids
repeats splits its ask: candidates drawn in jitted JAX, this mask on the host, the pick in JAX
or NumPy.
"""

from __future__ import annotations

import numpy as np

from nas.space import SearchSpace


class FreshKeys:
    """Marks candidates whose canonical key is new; memoises the keys of observed archs."""

    def __init__(self, space: SearchSpace):
        self.space = space
        self._memo: dict[bytes, str] = {}

    def mask(self, candidates: np.ndarray, observed: np.ndarray) -> np.ndarray:
        """True for each candidate (n, D) whose key is new to `observed` and to the candidates
        before it."""
        seen = {self._key(a) for a in np.asarray(observed)}
        fresh = np.zeros(len(candidates), bool)
        for i, arch in enumerate(np.asarray(candidates)):
            key = self.space.key(arch)
            if key not in seen:
                fresh[i] = True
                seen.add(key)
        return fresh

    def _key(self, arch: np.ndarray) -> str:
        raw = arch.tobytes()
        if raw not in self._memo:
            self._memo[raw] = self.space.key(arch)
        return self._memo[raw]
