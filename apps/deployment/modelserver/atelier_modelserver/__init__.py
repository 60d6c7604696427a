"""Atelier's model server: runs inside a run, imports nothing from the console.

`python -m atelier_modelserver` serves one model package (ModelArts predict API, KServe V2,
WebSocket, Server-Sent Events). `config` holds the package rules the console shares.
"""
