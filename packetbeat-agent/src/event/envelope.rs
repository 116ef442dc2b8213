//! Transaction → ECS document.
