"""The desk's policy, apart from the channels: reply templates, triage rules, waiting-time
targets, hooks, satisfaction surveys and the automation that runs them.

May import `connectors` (channels, engine, formatting, config) and `store`; the channels
and the engine never import this package.
"""
