"""The likelihood options shared by the policies that accept GLM rewards."""

from __future__ import annotations

from typing import Any, Literal

from .. import _validation as V
from ..likelihoods import Likelihood, get_likelihood
from ..models.laplace import METHODS
from .registry import Positive, PositiveInt

#: the experiment-file types of the likelihood options (used in ``from_environment``)
LikelihoodName = Literal["gaussian", "logistic"]
LaplaceMethod = Literal["exact", "minibatch", "online"]
LaplaceAt = Literal["posterior", "likelihood"]
__all__ = ["LaplaceAt", "LaplaceMethod", "LikelihoodName", "Positive", "PositiveInt",
           "check_laplace_at", "glm_options"]

#: where every GLM policy expands the log-likelihood unless told otherwise (docs/math.md §4)
DEFAULT_LAPLACE_AT = "posterior"


def check_laplace_at(laplace_at: str) -> str:
    if laplace_at not in ("likelihood", "posterior"):
        raise V.ValidationError(
            f"laplace_at must be 'likelihood' or 'posterior', got {laplace_at!r}"
        )
    return laplace_at


def glm_options(
    likelihood: str | Likelihood, laplace: str, laplace_batch: int, ridge: float, binarize: bool
) -> tuple[Likelihood, dict[str, Any]]:
    """Validate the likelihood options shared by every policy that accepts them."""
    lik = get_likelihood(likelihood, binarize=bool(binarize))
    if laplace not in METHODS:
        raise V.ValidationError(f"laplace must be one of {METHODS}, got {laplace!r}")
    options = {
        "method": laplace,
        "batch_size": V.check_int(laplace_batch, "laplace_batch", low=1),
        "ridge": V.check_positive(ridge, "ridge"),
    }
    return lik, options
