-- The test init: the plugin is a start package (linked by the test under $XDG_DATA_HOME), set up as a
-- user's config would, then one scenario runs.
vim.opt.swapfile = false
vim.opt.shadafile = 'NONE'
local here = vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2))
package.path = here .. '/?.lua;' .. package.path

local opts = vim.env.SWITCHBOARD_TEST_OPTS and vim.json.decode(vim.env.SWITCHBOARD_TEST_OPTS) or {}
local scenario_name = assert(vim.env.SWITCHBOARD_TEST_SCENARIO, 'SWITCHBOARD_TEST_SCENARIO is not set')

vim.api.nvim_create_autocmd('VimEnter', {
  once = true,
  callback = function()
    local harness = require('harness')
    local scenario = dofile(here .. '/scenarios/' .. scenario_name .. '.lua')
    if opts ~= false and not scenario.skip_setup then
      require('switchboard').setup(opts)
    end
    vim.schedule(function()
      harness.run(scenario.run, (scenario.timeout or 60) * 1000)
    end)
  end,
})
