"""Environments produce contexts and rewards and know the truth, so regret is exact."""

from .base import BanditEnvironment, Rounds
from .classification import ClassificationEnvironment
from .delayed import DelayedFeedback
from .movielens import MovieLensEnvironment
from .slates import SlateEnvironment
from .synthetic import MixedEffectEnvironment, draw_mixing

__all__ = [
    "BanditEnvironment",
    "ClassificationEnvironment",
    "DelayedFeedback",
    "MixedEffectEnvironment",
    "MovieLensEnvironment",
    "Rounds",
    "SlateEnvironment",
    "draw_mixing",
]
