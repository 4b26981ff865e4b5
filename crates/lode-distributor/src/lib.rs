//! The distributor role: validates pushed streams with Loki's rules and sends them to ingesters chosen by the ring
