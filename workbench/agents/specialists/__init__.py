"""The built-in specialists. Each module defines SPECIALIST; workbench.agents.registry lists the modules."""
