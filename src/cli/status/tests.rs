//! Golden tests for `rewind status` over recorded device-mapper states (the fake).
