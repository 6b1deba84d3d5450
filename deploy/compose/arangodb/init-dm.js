// Runs once, when the ArangoDB container initialises its data folder
// (/docker-entrypoint-initdb.d/): the database and the user dm-worker connects as.
// dm-worker creates its collections and named graph itself; it does not create databases.
const env = require('internal').env;
const db = require('@arangodb').db;
const users = require('@arangodb/users');

const name = env.DM_ARANGODB_DATABASE;
const user = env.DM_ARANGODB_USERNAME;
if (!name || !user || !env.DM_ARANGODB_PASSWORD) {
  throw new Error('DM_ARANGODB_DATABASE, DM_ARANGODB_USERNAME and DM_ARANGODB_PASSWORD must be set');
}
if (!db._databases().includes(name)) {
  db._createDatabase(name);
}
if (!users.exists(user)) {
  users.save(user, env.DM_ARANGODB_PASSWORD);
}
users.grantDatabase(user, name, 'rw');
users.grantCollection(user, name, '*', 'rw');
