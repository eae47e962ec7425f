"""Python client for kahets, the local batching sidecar for Apache Kafka (docs/protocol.md)."""
from .client import Client
from .wire import encode_frame

__all__ = ['Client', 'encode_frame']
