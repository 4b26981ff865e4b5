//! Wires the roles into a running node from one config: the module list behind -target, startup and graceful shutdown
