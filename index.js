'use strict'
// The package entry: the compiled TypeScript layer (ts/ -> lib/, built on install).
module.exports = require('./lib/index.js')
