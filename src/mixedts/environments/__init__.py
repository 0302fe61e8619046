"""Environments produce contexts and rewards and know the truth, so regret is exact."""

from .base import BanditEnvironment, Rounds
from .classification import ClassificationEnvironment
from .delayed import DelayedFeedback
from .diffusion import DiffusionEnvironment, draw_links
from .movielens import MovieLensEnvironment
from .slates import SlateEnvironment
from .synthetic import MixedEffectEnvironment, draw_mixing

__all__ = [
    "BanditEnvironment",
    "ClassificationEnvironment",
    "DelayedFeedback",
    "DiffusionEnvironment",
    "MixedEffectEnvironment",
    "MovieLensEnvironment",
    "Rounds",
    "SlateEnvironment",
    "draw_links",
    "draw_mixing",
]
