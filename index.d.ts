// Typings of the public API; the declarations are generated from ts/ with their docs.
export * from './lib/index'
