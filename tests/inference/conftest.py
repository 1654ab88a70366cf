"""Fixtures for the inference tests (defined in _inference_models.py)."""

from _inference_models import bundled_copy, multiclass_model, multilabel_model, site_models  # noqa: F401
