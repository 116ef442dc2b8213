//! The list of protocols the agent knows.
