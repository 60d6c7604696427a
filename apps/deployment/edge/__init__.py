"""Edge nodes, edge pools, edge services, load balancers and access ports (seed-06 §7, §12 items 41–42).

An edge node is a machine the workspace owns that runs our edge agent
(`python -m apps.deployment.edge.agent`): the agent enrols once with a one-time token, then
runs a run-engine worker on the node's own pool and heartbeats to the console over HTTP.
Edge services are long-lived runs on that pool; load balancers run inside the agent.
"""
