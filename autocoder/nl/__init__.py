"""Stage 1A/1B: a natural-language description -> architecture.yaml and deployment.yaml.

`autocoder new "DESCRIPTION"` asks the configured LLM for a structured draft (draft.py), renders
it to blueprints (render.py), compiles them with the full Stage 1C analysis and sends the
diagnostics back for a bounded number of repairs (session.py); the command (command.py) asks
the draft's questions, writes the blueprints and requirements.json, or says why it cannot.
"""
