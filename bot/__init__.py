"""feedbot: watches RSS/Atom feeds and posts a daily digest to chat webhooks.

The pipeline, one module per stage (see README "Design"):

    config → fetch → parse → poll.choose → extract → state
           → topics → render → payloads → deliver;  service schedules it, cli fronts it.
"""

__version__ = "0.1.0"
