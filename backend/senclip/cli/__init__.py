"""The ``senclip`` command: a click group (``main``) and one module per subcommand, each a thin call into the API.

May import: senclip.core, senclip.sentinel2, senclip.models, senclip.embedding, senclip.zeroshot, senclip.maps,
senclip.api, senclip.tools, senclip.region.
"""
