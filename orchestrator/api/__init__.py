"""HTTP routers of the orchestrator (FastAPI). Each module offers a factory returning an ``APIRouter``."""
