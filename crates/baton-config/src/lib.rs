//! Reading keystone.conf-style (oslo.config) INI files into typed, validated configuration.
