"""WeCom's protocol: callback crypto and message parsing, the API client, and a local stand-in
(used by tests, the demo and benches, never by the runtime). Imports nothing of ours but settings."""
