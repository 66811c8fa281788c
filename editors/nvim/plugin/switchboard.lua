-- switchboard.nvim: loaded by Neovim's packages, lazy.nvim or any plugin manager.
if vim.g.loaded_switchboard then
  return
end
vim.g.loaded_switchboard = true

local version = require('switchboard.version')
if not version.supported() then
  version.warn()
  return
end

require('switchboard').init()

vim.api.nvim_create_user_command('Switchboard', function(opts)
  require('switchboard.commands').run(opts)
end, {
  nargs = '*',
  range = true,
  desc = 'Switchboard: chat, model, history, new, usage, retry, stop, action, detach, think, overage, signin',
  complete = function(arg_lead, cmdline)
    return require('switchboard.commands').complete(arg_lead, cmdline)
  end,
})
