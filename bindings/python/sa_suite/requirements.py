"""The requirements both SQLite runs share (dbmux and pysqlite): SQLAlchemy's
suite defaults, with what SQLite itself supports opened, so that the
comparison covers those tests too. Per-backend facts come from the dialect
(`config.db.dialect.name`), never from the driver, so the two drivers are
held to the same list; on PostgreSQL the same class opens PostgreSQL's."""

from sqlalchemy.testing import exclusions
from sqlalchemy.testing.requirements import SuiteRequirements


def _on(*names):
    return exclusions.only_on(list(names))


class Requirements(SuiteRequirements):
    @property
    def json_type(self):
        return _on("sqlite", "postgresql")

    @property
    def json_array_indexes(self):
        return _on("sqlite", "postgresql")

    @property
    def datetime_microseconds(self):
        return exclusions.open()

    @property
    def timestamp_microseconds(self):
        return _on("postgresql")

    @property
    def datetime_historic(self):
        return exclusions.open()

    @property
    def date_historic(self):
        return exclusions.open()

    @property
    def savepoints(self):
        return exclusions.open()

    @property
    def ctes(self):
        return exclusions.open()

    @property
    def ctes_on_dml(self):
        return _on("postgresql")

    @property
    def ctes_with_update_delete(self):
        return exclusions.open()

    @property
    def window_functions(self):
        return exclusions.open()

    @property
    def views(self):
        return exclusions.open()

    @property
    def temp_table_reflection(self):
        return exclusions.open()

    @property
    def temp_table_names(self):
        return exclusions.open()

    @property
    def unique_constraint_reflection(self):
        return exclusions.open()

    @property
    def computed_columns(self):
        return exclusions.open()

    @property
    def insert_from_select(self):
        return exclusions.open()

    @property
    def precision_numerics_general(self):
        return exclusions.open()

    @property
    def precision_numerics_enotation_large(self):
        return _on("postgresql")

    @property
    def isolation_level(self):
        return exclusions.open()

    @property
    def autocommit(self):
        return exclusions.open()

    @property
    def regexp_match(self):
        return _on("sqlite", "postgresql")

    @property
    def regexp_replace(self):
        return _on("postgresql")

    @property
    def schemas(self):
        # SQLite's test_schema is an ATTACHed file that SQLAlchemy's
        # provisioning sets up only for its own SQLite drivers' engines
        return _on("postgresql")

    @property
    def cross_schema_fk_reflection(self):
        return _on("postgresql")

    @property
    def implicit_default_schema(self):
        return _on("postgresql")

    @property
    def server_side_cursors(self):
        return exclusions.closed()

    @property
    def array_type(self):
        return exclusions.closed()

    @property
    def uuid_data_type(self):
        return exclusions.open()

    def get_isolation_levels(self, config):
        if config.db.dialect.name == "sqlite":
            return {"default": "SERIALIZABLE",
                    "supported": ["SERIALIZABLE", "READ UNCOMMITTED", "AUTOCOMMIT"]}
        return {"default": "READ COMMITTED",
                "supported": ["SERIALIZABLE", "READ UNCOMMITTED", "READ COMMITTED",
                              "REPEATABLE READ", "AUTOCOMMIT"]}
