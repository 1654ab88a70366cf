"""Saliency for ONNX classifiers: exact one-pass CAM, occlusion and RISE, mapping and overlays.

Public entry points: :func:`app.saliency.cam.add_cam_outputs`, :func:`app.saliency.cam.cam_maps`,
:func:`app.saliency.perturbation.occlusion`, :func:`app.saliency.perturbation.rise`,
:func:`app.saliency.mapping.to_source`, :func:`app.saliency.overlay.render_overlay`, and the
high-level :class:`app.saliency.api.Explainer`, :func:`app.saliency.api.compute_saliency` and
:func:`app.saliency.api.write_saliency`. Nothing here imports Qt.
"""
