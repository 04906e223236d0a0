"""The stage engine: funnel definitions (fields, operators, rules) compiled to ClickHouse SQL.

Stages are evaluated at query time over stored events, so every definition applies to all
history. Definitions are data; SQL takes their values only as bound parameters.
"""
