"""Things with weights or fitted state: the ASR loader, the topic model, sentiment."""
