"""Names of the files Autocoder reads and writes in a project directory (light to import)."""

ARCHITECTURE = "architecture.yaml"
DEPLOYMENT = "deployment.yaml"
GENERATED = "generated"
CACHE = f"{GENERATED}/.cache"  # derived data and tool caches, never the user's project root
SOURCES = f"{GENERATED}/src"  # the generated system; findings name their files from the project root
CHECK_REPORT = "reports/check.json"
