"""agentforge's GPU runtime node: receives token shards and hyper-parameters, returns weights and metrics.

Started by runtime/node/client.ts as `python -m agentforge_node <command>`; see protocol.py for the wire format.
"""
