//! Loki-compatible protobuf messages (logproto.PushRequest) and Lode's gRPC services, generated at build time
