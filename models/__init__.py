"""Things with weights or fitted state: the ASR loader, the topic model, sentiment."""

import os

# onnxruntime (the embedding model, and faster-whisper's VAD) keeps a device id and queues usage events for
# Microsoft under ~/.cache/Microsoft unless told not to before it starts. callintel sends nothing anywhere.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
