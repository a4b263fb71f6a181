"""Look inside a trained world model: the dream API (api.py), its report files, videos, `dreamstream dream`."""
