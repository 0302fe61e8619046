"""Run policies against environments and measure regret."""

from .simulate import run_policy

__all__ = ["run_policy"]
