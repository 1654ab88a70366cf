"""On-device AI: model manifests, the model registry, onnxruntime sessions, pre/post-processing.

Public entry points: :class:`app.inference.registry.ModelRegistry`, :class:`app.inference.engine.Engine`,
:class:`app.inference.manifest.Manifest` and :func:`app.inference.analyze.analyze_paths`.
"""
