"""Names of the files Autocoder reads and writes in a project directory (light to import)."""

ARCHITECTURE = "architecture.yaml"
DEPLOYMENT = "deployment.yaml"
GENERATED = "generated"
CACHE = f"{GENERATED}/.cache"  # derived data and tool caches, never the user's project root
SOURCES = f"{GENERATED}/src"  # the generated system; findings name their files from the project root
CHECK_REPORT = "reports/check.json"
LOCK_FILE = "autocoder.lock"  # the frozen LLM completions (autocoder.llm.lock)
MAX_BLUEPRINT_BYTES = 4 * 1024 * 1024  # a blueprint file's size limit (AC005; blueprint.source)
