"""The node agent: records pods' containers and installs SeccompProfiles as files on its node."""
