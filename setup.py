"""robopost: campus parcel delivery by outdoor carts and indoor robots."""

from setuptools import find_packages, setup

PACKAGES = ["interfaces", "maps", "orchestrator", "robots", "elevator_bridge", "sim", "launch"]

setup(
    name="robopost",
    version="0.1.0",
    description="Orchestrates campus parcel delivery by unmanned carts and indoor robots",
    python_requires=">=3.11",
    packages=[p for p in find_packages(include=[f"{n}*" for n in PACKAGES])],
    package_data={
        "maps": ["campuses/*.yaml", "campuses/*.geojson", "campuses/*/*"],
        "launch": ["bridge/*.yaml"],
        "orchestrator": [
            "store/alembic.ini",
            "store/migrations/*.py",
            "store/migrations/*.mako",
            "store/migrations/versions/*.py",
            "console/*",
        ],
    },
    include_package_data=True,
    install_requires=[
        "networkx>=3.2",
        "shapely>=2.0",
        "pymap3d>=3.0",
        "numpy>=1.26",
        "pyyaml>=6.0",
        "pydantic>=2.6",
        "pydantic-settings>=2.2",
        "typer>=0.12",
        "rich>=13",
        "sqlalchemy>=2.0",
        "alembic>=1.13",
        "fastapi>=0.110",
        "uvicorn>=0.29",
        "matplotlib>=3.8",
        "scipy>=1.11",
        "paho-mqtt>=2.1",
        "pyserial>=3.5",
        "pymodbus>=3.6",
        "psutil>=5.9",
    ],
    extras_require={
        "postgres": ["psycopg[binary]>=3.1"],
        "test": [
            "pytest>=8",
            "pytest-xdist>=3.5",
            "pytest-asyncio>=0.24",
            "hypothesis>=6.100",
            "httpx>=0.27",
            "ruff>=0.6",
            "import-linter>=2.0",
            "mypy>=1.10",
            "types-PyYAML",
            "playwright>=1.45",
            "psycopg[binary]>=3.1",
            "jsonschema>=4.20",
        ],
        "ros": [
            "ros-jazzy-rclpy",
            "ros-jazzy-rmw-fastrtps-cpp",
            "ros-jazzy-std-msgs",
            "ros-jazzy-geometry-msgs",
            "ros-jazzy-nav-msgs",
            "ros-jazzy-sensor-msgs",
            "ros-jazzy-diagnostic-msgs",
            "ros-jazzy-std-srvs",
        ],
    },
    entry_points={"console_scripts": ["robopost=launch.cli:main"]},
)
