"""Names of the files Autocoder reads and writes in a project directory (light to import)."""

ARCHITECTURE = "architecture.yaml"
DEPLOYMENT = "deployment.yaml"
GENERATED = "generated"
CHECK_REPORT = "reports/check.json"
