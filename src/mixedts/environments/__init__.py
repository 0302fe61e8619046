"""Environments produce contexts and rewards and know the truth, so regret is exact."""

from .synthetic import MixedEffectEnvironment

__all__ = ["MixedEffectEnvironment"]
