"""MLServer runtime serving a Hilum-exported ONNX classifier with onnxruntime.

Written beside ``model-settings.json`` by ``hilum models export-serving``; MLServer (1.7) imports
it from the model folder. It decodes the request's tensors, runs only the outputs the request asks
for (all when none are named) and returns them, so one request yields the logits and the CAM maps.
It runs inside MLServer's own environment (not Hilum's).
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse, MetadataModelResponse, Parameters
from mlserver.utils import get_model_uri


class HilumOnnxRuntime(MLModel):
    """One onnxruntime session per loaded model (CUDA when the server has it, else CPU)."""

    async def load(self) -> bool:
        uri = await get_model_uri(self.settings)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        threads = int(os.environ.get("HILUM_SERVING_THREADS", "0") or 0)
        if threads:
            opts.intra_op_num_threads = threads
        providers = [
            p
            for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
            if p in ort.get_available_providers()
        ]
        self._session = ort.InferenceSession(uri, sess_options=opts, providers=providers)
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._outputs = [o.name for o in self._session.get_outputs()]
        return True

    async def metadata(self) -> MetadataModelResponse:
        """MLServer's metadata plus the ``hilum_*`` parameters of model-settings.json (the sha256
        of the verified model this was exported from), which Hilum checks before first use."""
        md = await super().metadata()
        params = self.settings.parameters
        extra = dict(getattr(params, "extra", None) or {}) if params is not None else {}
        ours = {k: str(v) for k, v in extra.items() if str(k).startswith("hilum_")}
        if ours:
            base = md.parameters.model_dump(exclude_none=True) if md.parameters else {}
            md.parameters = Parameters(**base, **ours)
        return md

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feeds = {}
        for request_input in payload.inputs:
            if request_input.name not in self._inputs:
                raise ValueError(f"unknown input '{request_input.name}'")
            feeds[request_input.name] = np.ascontiguousarray(NumpyCodec.decode_input(request_input))
        names = [o.name for o in payload.outputs] if payload.outputs else list(self._outputs)
        unknown = [n for n in names if n not in self._outputs]
        if unknown:
            raise ValueError(f"unknown output(s) {', '.join(unknown)}")
        values = self._session.run(names, feeds)
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            id=payload.id,
            outputs=[NumpyCodec.encode_output(n, v) for n, v in zip(names, values)],
        )
