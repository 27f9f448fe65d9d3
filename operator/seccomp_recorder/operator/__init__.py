"""The kopf operator: deploys the node agent and turns recordings into SeccompProfiles."""
