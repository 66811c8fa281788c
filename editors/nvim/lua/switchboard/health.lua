-- :checkhealth switchboard
local config = require('switchboard.config')
local server = require('switchboard.server')
local status = require('switchboard.status')
local version = require('switchboard.version')

local M = {}

-- `<cmd without serve> --version`, so a `cmd` like { 'python', '-m', 'switchboard', 'serve' } works too.
local function server_version(cmd)
  local argv = vim.deepcopy(cmd)
  if argv[#argv] == 'serve' then
    table.remove(argv)
  end
  table.insert(argv, '--version')
  local ok, result = pcall(function()
    return vim.system(argv, { text = true }):wait(10000)
  end)
  if not ok or not result or result.code ~= 0 then
    return nil, ok and result and vim.trim((result.stderr or '') .. (result.stdout or '')) or tostring(result)
  end
  return vim.trim(result.stdout)
end

function M.check()
  local health = vim.health
  health.start('switchboard: Neovim')
  if version.supported() then
    local major, minor, patch = version.current()
    health.ok(('Neovim %d.%d.%d'):format(major, minor, patch))
  else
    health.error(version.message())
    return
  end

  health.start('switchboard: server')
  local root = server.root(0)
  local cmd, found_in = server.find_cmd(root)
  if not cmd then
    health.error('No `switchboard` server found.', {
      'pip install switchboard (so `switchboard` is on PATH)',
      'or run ./dev setup in a Switchboard checkout',
      'or set `cmd` in require("switchboard").setup()',
    })
  else
    health.ok(('Server: %s (from %s)'):format(table.concat(cmd, ' '), found_in))
    local text, problem = server_version(cmd)
    if text then
      health.ok('Version: ' .. text)
    else
      health.error('`' .. table.concat(cmd, ' ') .. '` does not answer --version: ' .. tostring(problem))
    end
  end
  local info = server.server_info(root)
  if info then
    health.ok(('Running for %s: %s %s'):format(root, info.name or 'switchboard', info.version or ''))
  else
    health.info(('Not running for %s yet; :Switchboard chat starts it.'):format(root))
  end

  health.start('switchboard: account')
  local env = config.options.env or {}
  if config.options.api_key then
    health.ok('Anthropic API key: given in setup() (api_key)')
  elseif (env.ANTHROPIC_API_KEY or vim.env.ANTHROPIC_API_KEY or '') ~= '' then
    health.ok('Anthropic API key: set (ANTHROPIC_API_KEY)')
  else
    health.warn('No Anthropic API key: chats will fail until one is set.', {
      'export ANTHROPIC_API_KEY before starting Neovim',
      'or pass api_key in require("switchboard").setup() (read it from a secret store, not a dotfile)',
    })
  end
  local base = env.ANTHROPIC_BASE_URL or vim.env.ANTHROPIC_BASE_URL
  if base and base ~= '' then
    health.info('Anthropic API base URL: ' .. base)
  end
  local gateway = config.options.gateway_url or env.SWITCHBOARD_GATEWAY_URL or vim.env.SWITCHBOARD_GATEWAY_URL
  if gateway and gateway ~= '' then
    health.ok('Switchboard Cloud gateway: ' .. gateway .. ' (:Switchboard signin)')
    if config.options.secret_store then
      health.ok('Sign-in kept between sessions by your secret_store')
    else
      health.info('Sign-in not kept between sessions (no secret_store): see :help switchboard-secret-store')
    end
  end
  local signed_in = require('switchboard.account').describe(status.usage)
  if signed_in then
    health.ok('Signed in to Switchboard Cloud: ' .. signed_in)
  end
  local usage = status.usage
  if usage then
    health.ok(('Plan: %s; %s'):format(usage.planName, usage.planReason))
    health.ok(('Credits: %s used, %s left'):format(
      status.format_credits(usage.usedCredits),
      status.format_credits(usage.remainingCredits)
    ))
  elseif config.options.entitlement or (vim.env.SWITCHBOARD_ENTITLEMENT or '') ~= '' then
    health.info('Signed in with an entitlement token; the plan shows once the server runs.')
  else
    health.info('Not signed in: the Free plan (:Switchboard signin, or :Switchboard signin {token}).')
  end
end

return M
